//! The device side of sync: the only device crate that speaks HTTP.
//!
//! [`SyncClient::sync`] runs one sync of a replica: upload the attachments the server has not
//! confirmed (chunked, resuming from what the server already holds), push local changes batch by
//! batch (a batch is resent unchanged after a failure; the server skips what it already applied),
//! then pull pages until the replica is up to date (each page applied in one SQLite transaction
//! together with its cursor). Killing the process at any point loses nothing: the next sync
//! continues from the replica's state.

#![forbid(unsafe_code)]

mod account;
mod batch;
pub mod conflicts;
mod maptools;
mod office;
mod processes;
pub mod query;
mod stats;
mod tasks;

pub use account::{
    BasemapPackage, FeatureHistory, LayerEntry, NewFeature, PackageArea, Place, ReplicaEstimate, ReportFeature,
    ReportLayer, Session,
};
pub use office::{CaseQuery, RawAnswer};
pub use query::ItemsQuery;
pub use stats::StatsQuery;
pub use tasks::TaskSync;

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use shikong_protocol as wire;
use shikong_protocol::api::Problem;
use shikong_protocol::url;
use shikong_protocol::verify;
use shikong_replica::Replica;

/// Attachment upload chunk size: small enough to resume cheaply on a weak 4G link.
pub const CHUNK: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    #[error("cannot reach {url}: {message}")]
    Network { url: String, message: String },
    /// The server's TLS certificate is not trusted (unknown issuer, wrong name, expired): an
    /// on-premises CA must be given to the client (`--ca-cert`, the app's CA setting).
    #[error(
        "the server's certificate is not trusted ({url}): {message}; if it is signed by an on-premises CA, give that CA's certificate (--ca-cert FILE, or the CA setting in the app)"
    )]
    Untrusted { url: String, message: String },
    /// The extra CA certificate given to the client is no PEM certificate.
    #[error("CA certificate: {0}")]
    CaCertificate(String),
    #[error("the server refused ({status}): {message}")]
    Server { status: u16, code: Option<wire::SyncErrorCode>, message: String },
    #[error("replica: {0}")]
    Replica(#[from] shikong_replica::ReplicaError),
    #[error("invalid answer from the server: {0}")]
    Protocol(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = SyncError> = std::result::Result<T, E>;

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub attachments_uploaded: usize,
    pub pushed_entities: usize,
    pub accepted: usize,
    pub unchanged: usize,
    /// `(layer, entity, reason)` of refused changes (kept on the device).
    pub rejected: Vec<(String, String, String)>,
    pub pulled_entities: usize,
    pub pages: usize,
    /// Open conflicts in the replica after the sync.
    pub conflicts: usize,
    /// What happened to the offline gazetteer.
    pub gazetteer: GazetteerRefresh,
    /// Whether the end-of-sync verification ran (an older server, or more unsent edits than one
    /// request may name, leave it out).
    pub verified: bool,
    /// Entities the verification found different from the server and repaired (0 while sync is
    /// healthy; the server counts them in `/metrics`).
    pub repaired: usize,
    /// Layers of the replica the user may no longer read (a changed role or permission rule):
    /// the server sent nothing more of them and they are left out of the verification; what the
    /// device holds of them stays as it was. The app tells the user (`reason` is the server's).
    pub revoked: Vec<wire::RevokedLayer>,
    /// Offline field tasks: actions sent, tasks refreshed (`tasks.rs`).
    pub tasks: TaskSync,
}

/// The offline gazetteer after a sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum GazetteerRefresh {
    /// The server's was the same as the device's (304).
    #[default]
    Unchanged,
    /// A new subset was stored (bytes).
    Updated(usize),
    /// The server has none for this replica; the data sync still succeeded.
    Unavailable(String),
}

/// Progress of a running sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Uploading {
        done: usize,
        total: usize,
    },
    Pushing {
        batches: usize,
    },
    Pulling {
        pages: usize,
        entities: usize,
    },
    /// Comparing the replica with the server after the pull.
    Verifying,
}

/// Answers that mean "busy, ask again": retried like network failures. (Not 503: this server
/// answers it for what it does not offer, such as a missing gazetteer.)
const BUSY: [StatusCode; 2] = [StatusCode::REQUEST_TIMEOUT, StatusCode::TOO_MANY_REQUESTS];

#[derive(Debug, Clone)]
pub struct SyncClient {
    base: String,
    token: String,
    http: Client,
    retries: u32,
}

/// An error and its causes, `: `-separated (reqwest's own text names only the URL; the cause
/// — refused connection, TLS alert, timeout — is further down the chain).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// The CA certificates in `pem` (one or more `BEGIN CERTIFICATE` blocks), checked as
/// [`SyncClient::with_ca`] reads them; returns how many there are.
pub fn check_ca_pem(pem: &[u8]) -> Result<usize> {
    ca_certificates(pem).map(|c| c.len())
}

fn ca_certificates(pem: &[u8]) -> Result<Vec<reqwest::Certificate>> {
    let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| SyncError::CaCertificate(chain(&e)))?;
    if certs.is_empty() {
        return Err(SyncError::CaCertificate("no PEM certificate (`BEGIN CERTIFICATE`) found".into()));
    }
    Ok(certs)
}

/// The TLS verification failure in a request error's causes, if that is what failed.
fn untrusted_certificate(e: &reqwest::Error) -> Option<String> {
    invalid_certificate(e)
}

fn invalid_certificate(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(rustls::Error::InvalidCertificate(c)) = e.downcast_ref::<rustls::Error>() {
        return Some(format!("invalid peer certificate: {c:?}"));
    }
    // An `io::Error` carrying another error (tokio-rustls wraps rustls errors so, sometimes twice)
    // skips the carried error in `source()`: look inside.
    if let Some(inner) = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref())
        && let Some(found) = invalid_certificate(inner)
    {
        return Some(found);
    }
    e.source().and_then(invalid_certificate)
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes)?;
    Ok(e.finish()?)
}

impl SyncClient {
    /// A client for the server at `base` (e.g. `https://gis.example.cn` or
    /// `http://10.0.0.5:8080`) with a bearer token; HTTPS servers must present a certificate the
    /// system trusts.
    pub fn new(base: &str, token: &str) -> Result<Self> {
        Self::with_ca(base, token, None)
    }

    /// Like [`SyncClient::new`], also trusting the CA certificates in `extra_ca_pem` (PEM; an
    /// on-premises CA) besides the system's roots.
    pub fn with_ca(base: &str, token: &str, extra_ca_pem: Option<&[u8]>) -> Result<Self> {
        let mut builder = Client::builder().connect_timeout(Duration::from_secs(10)).timeout(Duration::from_secs(300));
        if let Some(pem) = extra_ca_pem {
            builder = builder.tls_certs_merge(ca_certificates(pem)?);
        }
        let http = builder.build().map_err(|e| SyncError::Network { url: base.to_owned(), message: chain(&e) })?;
        Ok(SyncClient { base: base.trim_end_matches('/').to_owned(), token: token.to_owned(), http, retries: 6 })
    }

    /// The error of a request that got no answer: an untrusted certificate, or the network.
    pub(crate) fn transport_error(&self, e: &reqwest::Error) -> SyncError {
        match untrusted_certificate(e) {
            Some(message) => SyncError::Untrusted { url: self.base.clone(), message },
            None => SyncError::Network { url: self.base.clone(), message: chain(e) },
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request, retrying network failures and a busy server's answers (408 timed out in
    /// its queue, 429) with backoff — the requests are idempotent, so a push the server
    /// committed after answering 408 is merely confirmed by the retry.
    fn send(&self, make: &dyn Fn() -> RequestBuilder) -> Result<Response> {
        let mut delay = Duration::from_millis(300);
        let mut attempt = 0;
        loop {
            match make().bearer_auth(&self.token).send() {
                Ok(r) if attempt < self.retries && BUSY.contains(&r.status()) => {
                    attempt += 1;
                    // Retry-After in seconds when the server gives it (bounded), else the backoff.
                    let wait = r
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                        .map_or(delay, |s| Duration::from_secs(s.min(60)));
                    std::thread::sleep(wait);
                    delay *= 2;
                }
                Ok(r) => return Ok(r),
                // A refused certificate stays refused: no retry.
                Err(e)
                    if attempt < self.retries
                        && (e.is_connect() || e.is_timeout() || e.is_request())
                        && untrusted_certificate(&e).is_none() =>
                {
                    attempt += 1;
                    std::thread::sleep(delay);
                    delay *= 2;
                }
                Err(e) => return Err(self.transport_error(&e)),
            }
        }
    }

    fn check(r: Response) -> Result<Response> {
        if r.status().is_success() {
            return Ok(r);
        }
        Err(Self::refusal(r))
    }

    /// The error of a refused request: the problem+json answer's detail and sync code. A body
    /// that is no problem (a proxy's error page) still gives the status.
    fn refusal(r: Response) -> SyncError {
        let status = r.status().as_u16();
        match Self::problem(r) {
            Some(p) => SyncError::Server { status, code: p.sync.map(|s| s.code), message: p.detail },
            None => SyncError::Server { status, code: None, message: "no details".into() },
        }
    }

    fn problem(r: Response) -> Option<Problem> {
        serde_json::from_slice(&r.bytes().ok()?).ok()
    }

    fn json<T: for<'de> serde::Deserialize<'de>>(r: Response) -> Result<T> {
        let bytes = r.bytes().map_err(|e| SyncError::Protocol(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| SyncError::Protocol(e.to_string()))
    }

    /// Asks the server for a replica of `layers` (within `area`) and writes it to `out`.
    pub fn create_replica(&self, layers: &[String], area: Option<&str>, name: Option<&str>, out: &Path) -> Result<()> {
        if out.exists() {
            return Err(SyncError::Io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} already exists", out.display()),
            )));
        }
        let req = wire::ReplicaRequest {
            protocol: wire::PROTOCOL_VERSION,
            layers: layers.to_vec(),
            area: area.map(str::to_owned),
            name: name.map(str::to_owned),
        };
        let body = serde_json::to_vec(&req).map_err(|e| SyncError::Protocol(e.to_string()))?;
        let r = Self::check(self.send(&|| {
            self.http.post(self.url("/sync/replicas")).header("content-type", "application/json").body(body.clone())
        })?)?;
        let bytes = r.bytes().map_err(|e| SyncError::Protocol(e.to_string()))?;
        // Written under a temporary name first: a cut-off download never looks like a replica.
        let tmp = out.with_extension("gpkg.part");
        std::fs::write(&tmp, &bytes)?;
        std::fs::rename(&tmp, out)?;
        Ok(())
    }

    /// One full sync of `replica`.
    pub fn sync(&self, replica: &mut Replica, progress: &mut dyn FnMut(Progress)) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        self.upload_attachments(replica, &mut report, progress)?;
        let mut batches = 0;
        // A server restored from an older backup says so (`diverged`) in the first answer after
        // the restore; the replica then queues its own changes again, which a second round sends.
        for _round in 0..2 {
            let resent = self.push_and_pull(replica, &mut report, &mut batches, progress)?;
            if resent == 0 {
                break;
            }
        }
        progress(Progress::Verifying);
        let revoked: Vec<&str> = report.revoked.iter().map(|r| r.layer.as_str()).collect();
        if let Some(repaired) = self.verify_layers(replica, &revoked)? {
            report.verified = true;
            report.repaired = repaired;
        }
        report.conflicts = replica.conflicts()?.len();
        report.tasks = self.sync_tasks(replica)?;
        report.gazetteer = self.refresh_gazetteer(replica)?;
        Ok(report)
    }

    /// Pushes every pending change, then pulls to the last page; returns how many own changes the
    /// replica queued again because the server went back in time.
    fn push_and_pull(
        &self,
        replica: &mut Replica,
        report: &mut SyncReport,
        batches: &mut usize,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<usize> {
        let mut resent = 0;
        replica.retry_missing_dependencies()?;
        while let Some(batch) = replica.push_batch(wire::MAX_PUSH_ENTITIES)? {
            let body = gzip(&serde_json::to_vec(&batch).map_err(|e| SyncError::Protocol(e.to_string()))?)?;
            let r = Self::check(self.send(&|| {
                self.http
                    .post(self.url("/sync/push"))
                    .header("content-type", "application/json")
                    .header("content-encoding", "gzip")
                    .body(body.clone())
            })?)?;
            let resp: wire::PushResponse = Self::json(r)?;
            report.pushed_entities += batch.entities.len();
            for res in &resp.results {
                match &res.outcome {
                    wire::Outcome::Accepted { .. } => report.accepted += 1,
                    wire::Outcome::Unchanged { .. } => report.unchanged += 1,
                    wire::Outcome::Rejected { reason, .. } => {
                        report.rejected.push((res.layer.clone(), res.entity.to_string(), reason.clone()))
                    }
                }
            }
            let applied = replica.apply_push_response(&resp)?;
            resent += applied.resent;
            *batches += 1;
            progress(Progress::Pushing { batches: *batches });
        }
        let id = replica.info().id;
        loop {
            let cursor = replica.cursor()?;
            // `seen` only to a server that sent a mark (older ones refuse unknown parameters).
            let seen =
                replica.server_mark()?.map(|m| format!("&seen={}", url::encode_component(&m))).unwrap_or_default();
            let r = Self::check(self.send(&|| {
                self.http.get(self.url(&format!(
                    "/sync/pull?replica={id}&cursor={}&limit=1000{seen}",
                    url::encode_component(&cursor)
                )))
            })?)?;
            let page: wire::PullPage = Self::json(r)?;
            if page.protocol != wire::PROTOCOL_VERSION {
                return Err(SyncError::Protocol(format!("server speaks protocol {}", page.protocol)));
            }
            report.pulled_entities += page.entities.len();
            report.pages += 1;
            for r in &page.revoked {
                if !report.revoked.iter().any(|k| k.layer == r.layer) {
                    report.revoked.push(r.clone());
                }
            }
            let more = page.more;
            resent += replica.apply_pull_page(&page)?.resent;
            progress(Progress::Pulling { pages: report.pages, entities: report.pulled_entities });
            if !more {
                break;
            }
        }
        Ok(resent)
    }

    /// Fetches the gazetteer subset of the replica's area when the server's differs from the one
    /// stored (`If-None-Match`), and stores it. A server without one is not an error.
    /// End-of-sync verification (docs/sync-protocol.md, "Verification"): sends the replica's
    /// digest, and fetches and applies every entity the server's answer shows to differ, then
    /// checks once more. Returns the entities repaired, or `None` when the server cannot verify
    /// (an older server without the route, or more unsent edits than one request may name).
    pub fn verify(&self, replica: &mut Replica) -> Result<Option<usize>> {
        self.verify_layers(replica, &[])
    }

    /// [`SyncClient::verify`] without the layers in `skip` (those the server no longer lets the
    /// user read: it would refuse to verify them).
    fn verify_layers(&self, replica: &mut Replica, skip: &[&str]) -> Result<Option<usize>> {
        let mut repaired = 0;
        for _round in 0..2 {
            let mut req = replica.verify_request()?;
            req.layers.retain(|l| !skip.contains(&l.layer.as_str()));
            if req.exclude.len() > verify::MAX_VERIFY_EXCLUDED {
                return Ok(None);
            }
            let r = self.post_json("/sync/verify", &req)?;
            if r.status() == StatusCode::NOT_FOUND {
                // A sync code means a real refusal (unknown replica); none means no such route.
                return match Self::problem(r) {
                    Some(Problem { sync: Some(s), detail, .. }) => {
                        Err(SyncError::Server { status: 404, code: Some(s.code), message: detail })
                    }
                    _ => Ok(None),
                };
            }
            let verdict: verify::VerifyResponse = Self::json(Self::check(r)?)?;
            let targets = replica.repair_targets(&verdict)?;
            if targets.is_empty() {
                break;
            }
            for chunk in targets.chunks(verify::MAX_REPAIR_ENTITIES) {
                let req = verify::RepairRequest {
                    protocol: wire::PROTOCOL_VERSION,
                    replica: replica.info().id,
                    entities: chunk.to_vec(),
                };
                let answer: verify::RepairResponse = Self::json(Self::check(self.post_json("/sync/repair", &req)?)?)?;
                replica.apply_repair(&answer)?;
            }
            repaired += targets.len();
        }
        Ok(Some(repaired))
    }

    fn post_json<T: serde::Serialize>(&self, path: &str, body: &T) -> Result<Response> {
        let body = serde_json::to_vec(body).map_err(|e| SyncError::Protocol(e.to_string()))?;
        self.send(&|| self.http.post(self.url(path)).header("content-type", "application/json").body(body.clone()))
    }

    pub fn refresh_gazetteer(&self, replica: &Replica) -> Result<GazetteerRefresh> {
        let current = replica.gazetteer()?;
        let id = replica.info().id;
        let r = self.send(&|| {
            let mut b = self.http.get(self.url(&format!("/geocode/subset?replica={id}")));
            if let Some(g) = &current {
                b = b.header("if-none-match", format!("\"{}\"", g.tag));
            }
            b
        })?;
        match r.status().as_u16() {
            304 => return Ok(GazetteerRefresh::Unchanged),
            400 | 404 | 503 => {
                let detail = Self::problem(r).map_or_else(|| "no gazetteer".to_owned(), |p| p.detail);
                return Ok(GazetteerRefresh::Unavailable(detail));
            }
            _ => {}
        }
        let r = Self::check(r)?;
        let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let tag = header("etag").unwrap_or_default().trim_matches('"').to_owned();
        let edition = url::decode_component(&header("x-shikong-gazetteer-edition").unwrap_or_default())
            .map_err(|e| SyncError::Protocol(format!("/geocode/subset: X-Shikong-Gazetteer-Edition: {e}")))?;
        let bytes = r.bytes().map_err(|e| SyncError::Protocol(e.to_string()))?.to_vec();
        let n = bytes.len();
        replica.set_gazetteer(&shikong_replica::GazetteerSnapshot { edition, tag, bytes })?;
        Ok(GazetteerRefresh::Updated(n))
    }

    fn upload_attachments(
        &self,
        replica: &mut Replica,
        report: &mut SyncReport,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<()> {
        let pending = replica.unconfirmed_attachments()?;
        let total = pending.len();
        for (i, a) in pending.iter().enumerate() {
            let bytes = replica.attachment(&a.sha256)?;
            let evidence = serde_json::to_value(&a.evidence).map_err(|e| SyncError::Protocol(e.to_string()))?;
            self.upload(&a.sha256, &bytes, &a.mime, &evidence)?;
            replica.confirm_attachment(&a.sha256)?;
            report.attachments_uploaded += 1;
            progress(Progress::Uploading { done: i + 1, total });
        }
        Ok(())
    }

    /// Uploads one attachment, resuming from what the server already holds.
    pub fn upload(&self, sha: &str, bytes: &[u8], mime: &str, evidence: &serde_json::Value) -> Result<()> {
        use base64ct::Encoding;
        let url = self.url(&format!("/sync/blobs/{sha}"));
        let head = self.send(&|| self.http.head(&url))?;
        if head.status() == StatusCode::OK {
            return Ok(()); // deduplicated
        }
        let mut offset: usize = head
            .headers()
            .get("x-shikong-received")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let ev = base64ct::Base64::encode_string(evidence.to_string().as_bytes());
        let total = bytes.len();
        if total == 0 {
            return Err(SyncError::Protocol(format!("attachment {sha} is empty")));
        }
        while offset < total {
            let end = (offset + CHUNK).min(total);
            let chunk = bytes[offset..end].to_vec();
            let range = format!("bytes {offset}-{}/{total}", end - 1);
            let r = self.send(&|| {
                self.http
                    .put(&url)
                    .header("content-range", &range)
                    .header("content-type", mime)
                    .header("x-shikong-evidence", &ev)
                    .body(chunk.clone())
            })?;
            if r.status() == StatusCode::CONFLICT {
                // The server has a different amount than we thought (an earlier chunk landed).
                let received = Self::problem(r).and_then(|p| p.received).and_then(|v| usize::try_from(v).ok());
                offset = received.ok_or_else(|| {
                    SyncError::Protocol(format!("/sync/blobs/{sha}: a 409 answer without the bytes received"))
                })?;
                continue;
            }
            Self::check(r)?;
            offset = end;
        }
        Ok(())
    }
}
