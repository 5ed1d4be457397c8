//! `shikong serve`: the server's flags and its start-up. Apart from `cli.rs` because every limit
//! the server enforces (bodies, uploads, rasters, geocoding jobs, the tile cache) is a flag here,
//! with its default taken from `shikong_http::ServerConfig::default()` so the two cannot drift.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

#[derive(Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    data: crate::cli::DataDir,
    /// A streaming standby of the --store database (postgres:// URL) to serve OGC API items,
    /// tiles and geocoding reads from; writes and sync use --store. Reads fall back to --store
    /// while the standby is down or behind what this process wrote.
    #[arg(long, value_name = "URL")]
    read_replica: Option<String>,
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    max_body: usize,
    /// Allowed CORS origins (repeat, or `*`).
    #[arg(long = "cors-origin")]
    cors_origins: Vec<String>,
    /// Public base URL for links (default: from the request's Host header).
    #[arg(long)]
    public_url: Option<String>,
    /// Request timeout in seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Turn citizen self-registration off (`POST /auth/register` answers 403
    /// `registration_closed`); accounts are then added by administrators only.
    #[arg(long)]
    no_registration: bool,
    /// A reverse proxy whose X-Forwarded-For is believed for the client address (repeat for
    /// several). Logins are throttled and audited per client address; without this, the
    /// connection's peer is the client.
    #[arg(long = "trusted-proxy", value_name = "IP")]
    trusted_proxies: Vec<std::net::IpAddr>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Seconds requests in flight get after SIGTERM/SIGINT before the server closes them and exits.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    shutdown_grace: u64,
    /// Megabytes the vector tile cache (DATA/tiles/cache.sqlite) may take on disk; the least
    /// recently used tiles are evicted beyond it (0: nothing is cached on disk).
    #[arg(long, value_name = "MB", default_value_t = 1024)]
    tile_cache_mb: u64,
    /// Largest attachment (photo, document) one upload may be, in MB [default: 64].
    #[arg(long, value_name = "MB")]
    max_attachment_mb: Option<u64>,
    /// Unfinished attachment uploads one user may keep [default: 32].
    #[arg(long, value_name = "N")]
    upload_quota_files: Option<usize>,
    /// MB one user's unfinished uploads may declare in total [default: 256].
    #[arg(long, value_name = "MB")]
    upload_quota_mb: Option<u64>,
    /// Hours an untouched unfinished upload is kept before it is removed [default: 24].
    #[arg(long, value_name = "HOURS")]
    upload_expiry_hours: Option<u64>,
    /// Largest raster upload (`POST /tiles/rasters/{set}`), in MB [default: 16384].
    #[arg(long, value_name = "MB")]
    max_raster_upload_mb: Option<u64>,
    /// Unfinished batch geocoding jobs one user may have [default: 2].
    #[arg(long, value_name = "N")]
    geocode_jobs_per_user: Option<usize>,
    /// Unfinished batch geocoding jobs on the server [default: 8].
    #[arg(long, value_name = "N")]
    geocode_jobs_total: Option<usize>,
    /// Hours a finished geocoding job's result is kept [default: 24].
    #[arg(long, value_name = "HOURS")]
    geocode_results_hours: Option<u64>,
    /// Run the embedded MQTT broker (SensorThings MQTT extension) on this address, e.g.
    /// 127.0.0.1:1883 (port 0 picks a free port; printed on the second stdout line). Clients log
    /// in with their user name and a session or device token as the password.
    #[arg(long, value_name = "ADDR", conflicts_with = "mqtt_broker")]
    mqtt: Option<std::net::SocketAddr>,
    /// Attach to an external MQTT broker instead of embedding one:
    /// mqtt://[user[:password]@]host[:port] (port 1883 by default; user and password
    /// percent-encoded). That broker authenticates its clients; the server takes what is
    /// published on v1.1/Datastreams(ID)/Observations and publishes created observations.
    #[arg(long, value_name = "URL")]
    mqtt_broker: Option<String>,
    /// Seconds between health checks of the registered outside services [default: 60].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    service_health_seconds: Option<u64>,
}

pub(crate) fn run(a: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let store = match &a.read_replica {
        Some(replica) => {
            shikong_store::open_with_read_replica(&a.data.store_config()?, replica).context("--read-replica")?
        }
        None => a.data.open()?,
    };
    let tls = a.tls_cert.zip(a.tls_key).map(|(cert, key)| shikong_http::TlsFiles { cert, key });
    let defaults = shikong_http::ServerConfig::default();
    let mb = |v: Option<u64>, default: u64| v.map_or(default, |v| v.saturating_mul(1 << 20));
    let hours = |v: Option<u64>, default: Duration| v.map_or(default, |h| Duration::from_secs(h.saturating_mul(3600)));
    let jobs = defaults.geocode_jobs.clone();
    let geocode_jobs = shikong_http::BatchLimits {
        per_user: a.geocode_jobs_per_user.unwrap_or(jobs.per_user),
        total: a.geocode_jobs_total.unwrap_or(jobs.total),
        keep_for: hours(a.geocode_results_hours, jobs.keep_for),
        ..jobs
    };
    let config = shikong_http::ServerConfig {
        max_blob: mb(a.max_attachment_mb, defaults.max_blob),
        max_partial_uploads: a.upload_quota_files.unwrap_or(defaults.max_partial_uploads),
        max_partial_bytes: mb(a.upload_quota_mb, defaults.max_partial_bytes),
        partial_expiry: hours(a.upload_expiry_hours, defaults.partial_expiry),
        max_raster_upload: mb(a.max_raster_upload_mb, defaults.max_raster_upload),
        geocode_jobs,
        max_body: a.max_body,
        cors_origins: a.cors_origins,
        public_url: a.public_url,
        tls: tls.is_some(),
        timeout: Duration::from_secs(a.timeout),
        data_dir: a.data.data.clone(),
        trusted_proxies: a.trusted_proxies,
        tile_cache_bytes: a.tile_cache_mb.saturating_mul(1 << 20),
        services: shikong_http::services::ServicesConfig {
            health_every: a.service_health_seconds.map_or(defaults.services.health_every, Duration::from_secs),
            ..defaults.services.clone()
        },
        ..defaults
    };
    let auth = a.data.auth()?.with_config(shikong_auth::AuthConfig {
        citizen_registration: !a.no_registration,
        ..shikong_auth::AuthConfig::default()
    });
    let state = shikong_http::AppState::new(store, auth, config)?;
    // SensorThings readings: in the store's database on PostgreSQL (several processes share
    // it); on SQLite `DATA/timeseries.sqlite`, opened by the server on first use.
    if let shikong_store::StoreConfig::Postgres { url } = a.data.store_config()? {
        let clock = std::sync::Arc::new(shikong_model::SystemClock);
        let series = shikong_timeseries::postgres::PgSeries::open(&url, clock, Default::default())
            .context("opening the time-series tables in the store's database")?;
        state.set_timeseries(std::sync::Arc::new(series));
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    let opts = shikong_http::ServeOptions {
        tls,
        shutdown_grace: Duration::from_secs(a.shutdown_grace),
        ..shikong_http::ServeOptions::new(a.listen)
    };
    let mqtt_mode = match (a.mqtt, a.mqtt_broker) {
        (Some(listen), _) => {
            Some(shikong_http::MqttMode::Embedded { listen, config: shikong_http::MqttBrokerConfig::default() })
        }
        (None, Some(url)) => Some(shikong_http::MqttMode::External { url }),
        (None, None) => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let served = rt.block_on(async move {
        let mqtt = match mqtt_mode {
            Some(mode) => Some(state.start_mqtt(mode).await.context("starting MQTT")?),
            None => None,
        };
        let mqtt_addr = mqtt.as_ref().and_then(shikong_http::MqttService::local_addr);
        let served = shikong_http::serve(state, opts, |addr| {
            // The first stdout line: scripts and tests read the bound address from it. One write,
            // errors ignored: a reader that took the first line and closed the pipe must not make
            // a second `println!` panic the server.
            let mut text = format!("shikong listening on {scheme}://{addr}\n");
            if let Some(m) = mqtt_addr {
                text.push_str(&format!("shikong MQTT broker on mqtt://{m}\n"));
            }
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        })
        .await;
        if let Some(m) = mqtt {
            m.shutdown().await;
        }
        anyhow::Ok(served?)
    });
    // Store work that a closed request started (spawn_blocking) may still run: dropping the
    // runtime would wait for it without end, so it gets a moment and is then abandoned (SQLite
    // rolls back an unfinished transaction).
    rt.shutdown_timeout(Duration::from_secs(1));
    served.with_context(|| format!("serving on {}", a.listen))
}
