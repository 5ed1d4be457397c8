//! `shikong sensors simulate`: live sensor stations for demos, tests and the IoT benchmark
//! (issue 18). Creates N stations in 洪山区 as SensorThings Things (idempotently, by their stable
//! names: a second run reuses them) and publishes their readings over MQTT QoS 1, one MQTT
//! connection per station (each station is a device; the broker's publish rate limit is per
//! client), until Ctrl-C or `--duration`.
//!
//! Apart from `cli.rs` because it is a network client (HTTP for the entities, MQTT for the
//! readings) with its own runtime; the stations and signals are pure (`sensors_sim.rs`).
//! Memory is bounded whatever the rate and run time: each station holds one signal, its MQTT
//! client's request channel is [`REQUEST_CAPACITY`] deep and its in-flight window
//! [`INFLIGHT`]; a station that cannot keep up skips ticks instead of queueing readings.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use jiff::Timestamp;
use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, QoS};
use serde_json::{Map, Value, json};
use shikong_sta::entity::{self, Id, TimeValue, UnitOfMeasurement};

use crate::sensors_sim::{Kind, Signal, Station, station_period};

/// Requests waiting in one station's MQTT client at most.
const REQUEST_CAPACITY: usize = 16;
/// Unacknowledged QoS 1 publishes of one station at most.
const INFLIGHT: u16 = 100;
/// The broker's default publish rate per client (`shikong_mqtt::BrokerConfig::publish_rate`).
const MAX_STATION_RATE: f64 = 100.0;
/// Where the server sends a client the reasons of its refused publishes.
const REFUSALS_TOPIC: &str = "shikong/refused";
const MEASUREMENT: &str = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement";

#[derive(Subcommand)]
pub(crate) enum SensorsCommand {
    /// Simulate live stations in 洪山区 (water level, manhole cover tilt, street-lamp current,
    /// PM2.5): create them as SensorThings Things (reused by name on later runs) and publish
    /// readings over MQTT QoS 1 until Ctrl-C or --duration.
    Simulate(SimulateArgs),
}

#[derive(Args)]
pub(crate) struct SimulateArgs {
    /// The server's base URL, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    server: String,
    /// Bearer token (session or device token; base64url: it may start with `-`). Also the MQTT
    /// password.
    #[arg(long, allow_hyphen_values = true, required_unless_present = "user", conflicts_with = "user")]
    token: Option<String>,
    /// Sign in as this user instead of --token; the password is read from standard input.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// Stations to simulate (1–10000); station i is `洪山区<kind> 00i`, the same on every run.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    stations: u32,
    /// Readings per second IN TOTAL over all stations (each station publishes every
    /// STATIONS/RATE seconds; at most 100 a second per station, the broker's per-client limit).
    #[arg(long, default_value_t = 2.0)]
    rate: f64,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// The MQTT broker (mqtt://host:port). Default: the endpoint the server's SensorThings
    /// landing page (/sta/v1.1, serverSettings) announces.
    #[arg(long, value_name = "URL")]
    mqtt: Option<String>,
    /// Seed of the simulated signals (the same seed gives the same series shape).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub(crate) fn run(c: SensorsCommand) -> anyhow::Result<()> {
    let SensorsCommand::Simulate(a) = c;
    if !(a.rate.is_finite() && a.rate > 0.0) {
        bail!("--rate must be a positive number of readings per second (in total), not {}", a.rate);
    }
    let per_station = a.rate / f64::from(a.stations);
    if per_station > MAX_STATION_RATE {
        bail!(
            "--rate {} over {} stations is {per_station:.0} readings/s per station; the broker takes at most {MAX_STATION_RATE} per client: add stations",
            a.rate,
            a.stations
        );
    }
    if let Some(d) = a.duration
        && !(d.is_finite() && d > 0.0 && d <= 366.0 * 86_400.0)
    {
        bail!("--duration must be between 0 and one year in seconds, not {d}");
    }
    let password = match &a.user {
        Some(_) => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password).context("reading the password from standard input")?;
            Some(password.trim_end_matches(['\n', '\r']).to_owned())
        }
        None => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(simulate(a, password))
}

/// The server's HTTP side: base URL, client, bearer token.
struct Api {
    base: String,
    http: reqwest::Client,
    token: String,
}

impl Api {
    fn sta(&self, path: &str) -> String {
        format!("{}/sta/v1.1{path}", self.base)
    }

    async fn get(&self, url: &str) -> anyhow::Result<Value> {
        let r = self.http.get(url).bearer_auth(&self.token).send().await.with_context(|| format!("GET {url}"))?;
        answer(r, url).await
    }

    async fn post(&self, path: &str, body: &impl serde::Serialize) -> anyhow::Result<Value> {
        let url = self.sta(path);
        let r = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        answer(r, &url).await
    }

    /// Every entity of a set as (name, id), following `@iot.nextLink`.
    async fn names(&self, set: &str) -> anyhow::Result<HashMap<String, Id>> {
        let mut out = HashMap::new();
        let mut url = self.sta(&format!("/{set}?$select=id,name&$top=10000"));
        loop {
            let page = self.get(&url).await?;
            for e in page["value"].as_array().map(Vec::as_slice).unwrap_or_default() {
                if let (Some(name), Some(id)) = (e["name"].as_str(), Id::from_json(&e["@iot.id"])) {
                    out.entry(name.to_owned()).or_insert(id);
                }
            }
            match page["@iot.nextLink"].as_str() {
                Some(next) => url = next.to_owned(),
                None => return Ok(out),
            }
        }
    }
}

/// The JSON of a 2xx answer, or the server's problem as the error.
async fn answer(r: reqwest::Response, url: &str) -> anyhow::Result<Value> {
    let status = r.status();
    let text = r.text().await.with_context(|| format!("reading the answer of {url}"))?;
    if !status.is_success() {
        let detail = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|p| p["detail"].as_str().map(str::to_owned))
            .unwrap_or(text);
        bail!("{url}: {status}: {detail}");
    }
    if text.is_empty() {
        Ok(Value::Null)
    } else {
        serde_json::from_str(&text).with_context(|| format!("{url}: not JSON"))
    }
}

/// Signs in (`--user`) or checks the token (`--token`): the token and the user name (the MQTT
/// user name; the token is the password).
async fn credentials(
    a: &SimulateArgs,
    password: Option<String>,
    http: &reqwest::Client,
    base: &str,
) -> anyhow::Result<(String, String)> {
    if let (Some(user), Some(password)) = (&a.user, password) {
        let url = format!("{base}/auth/login");
        let body = shikong_protocol::api::LoginRequest { username: user.clone(), password, device: None };
        let r = http.post(&url).json(&body).send().await.with_context(|| format!("POST {url}"))?;
        let login: shikong_protocol::api::LoginResponse =
            serde_json::from_value(answer(r, &url).await?).context("the login answer")?;
        return Ok((login.token, login.user.username));
    }
    let token = a.token.clone().context("--token or --user is needed")?;
    let url = format!("{base}/auth/me");
    let r = http.get(&url).bearer_auth(&token).send().await.with_context(|| format!("GET {url}"))?;
    let me: shikong_protocol::api::MeResponse =
        serde_json::from_value(answer(r, &url).await?).context("the /auth/me answer")?;
    Ok((token, me.username))
}

/// The MQTT broker: `--mqtt`, else the landing page's create-observations endpoint. A wildcard
/// host (a server listening on 0.0.0.0) is reached at the server URL's host.
async fn broker(a: &SimulateArgs, api: &Api) -> anyhow::Result<(String, u16)> {
    let url = match &a.mqtt {
        Some(u) => u.clone(),
        None => {
            let root = api.get(&api.sta("")).await?;
            let endpoints = &root["serverSettings"][shikong_sta::response::conformance::MQTT_CREATE]["endpoints"];
            endpoints.as_array().and_then(|e| e.first()).and_then(Value::as_str).map(str::to_owned).with_context(|| {
                format!(
                    "{}/sta/v1.1 announces no MQTT endpoint: start the server with `shikong serve --mqtt ADDR`, or name a broker with --mqtt mqtt://host:port",
                    api.base
                )
            })?
        }
    };
    let (host, port) = parse_mqtt_url(&url)?;
    if host == "0.0.0.0" || host == "::" || host == "[::]" {
        let server_host = reqwest::Url::parse(&api.base)?.host_str().unwrap_or("127.0.0.1").to_owned();
        return Ok((server_host, port));
    }
    Ok((host, port))
}

/// `mqtt://host:port` (or `tcp://`; port 1883 when absent) to host and port.
fn parse_mqtt_url(url: &str) -> anyhow::Result<(String, u16)> {
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .with_context(|| format!("{url}: an MQTT URL starts with mqtt:// (TLS is not supported by the simulator)"))?;
    let hostport = rest.split(['/', '?']).next().unwrap_or(rest);
    let hostport = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
    // `[v6]:port`, `[v6]`, `host:port`, `host`.
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => {
            let (h, rest) = v6.split_once(']').with_context(|| format!("{url}: unclosed `[`"))?;
            (h, rest.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    if host.is_empty() {
        bail!("{url}: no host");
    }
    let port = port.map_or(Ok(1883), |p| p.parse::<u16>().with_context(|| format!("{url}: port `{p}`")))?;
    Ok((host.to_owned(), port))
}

/// The Sensor and ObservedProperty of each kind (created once, found by name afterwards).
async fn kind_entities(api: &Api) -> anyhow::Result<HashMap<&'static str, (Id, Id)>> {
    let sensors = api.names("Sensors").await?;
    let props = api.names("ObservedProperties").await?;
    let mut out = HashMap::new();
    for kind in Kind::ALL {
        let sensor = match sensors.get(kind.sensor()) {
            Some(id) => id.clone(),
            None => {
                let s = entity::Sensor {
                    name: Some(kind.sensor().into()),
                    description: Some(format!("{}（shikong sensors simulate 生成的模拟数据）", kind.sensor())),
                    encoding_type: Some("text/plain".into()),
                    metadata: Some(json!("simulated")),
                    ..Default::default()
                };
                created_id(&api.post("/Sensors", &s).await?)?
            }
        };
        let (pname, definition) = kind.property();
        let prop = match props.get(pname) {
            Some(id) => id.clone(),
            None => {
                let p = entity::ObservedProperty {
                    name: Some(pname.into()),
                    definition: Some(definition.into()),
                    description: Some(format!("{pname}（{}）", kind.unit().0)),
                    ..Default::default()
                };
                created_id(&api.post("/ObservedProperties", &p).await?)?
            }
        };
        out.insert(kind.key(), (sensor, prop));
    }
    Ok(out)
}

fn created_id(v: &Value) -> anyhow::Result<Id> {
    Id::from_json(&v["@iot.id"]).with_context(|| format!("no @iot.id in the created entity: {v}"))
}

fn reference(id: &Id) -> Value {
    json!({"@iot.id": id.to_json()})
}

/// A station's Datastream (linked to its Thing by the caller: inline or by reference).
fn datastream(st: &Station, sensor: &Id, prop: &Id) -> entity::Datastream {
    let (unit, symbol) = st.kind.unit();
    let mut links = Map::new();
    links.insert("Sensor".into(), reference(sensor));
    links.insert("ObservedProperty".into(), reference(prop));
    let mut properties = Map::new();
    properties.insert("threshold".into(), json!(st.kind.threshold()));
    entity::Datastream {
        name: Some(st.datastream_name()),
        description: Some(format!("{}：{}（模拟）", st.name, st.kind.property().0)),
        unit_of_measurement: Some(UnitOfMeasurement {
            name: Some(unit.into()),
            symbol: Some(symbol.into()),
            definition: Some(format!("http://unitsofmeasure.org/ucum.html#{symbol}")),
        }),
        observation_type: Some(MEASUREMENT.into()),
        properties: Some(properties),
        links,
        ..Default::default()
    }
}

/// Creates what is missing of each station (Thing with Location and Datastream, by name) and
/// returns each station's Datastream id.
async fn provision(api: &Api, stations: &[Station]) -> anyhow::Result<Vec<Id>> {
    let kinds = kind_entities(api).await?;
    let things = api.names("Things").await?;
    let streams = api.names("Datastreams").await?;
    let missing = stations.iter().filter(|s| !streams.contains_key(&s.datastream_name())).count();
    let bar = if missing > 0 { ProgressBar::new(missing as u64) } else { ProgressBar::hidden() };
    bar.set_style(ProgressStyle::with_template("创建站点 {bar:30} {pos}/{len} {msg}")?);
    let mut ids = Vec::with_capacity(stations.len());
    for st in stations {
        if let Some(id) = streams.get(&st.datastream_name()) {
            ids.push(id.clone());
            continue;
        }
        let (sensor, prop) = &kinds[st.kind.key()];
        let mut ds = datastream(st, sensor, prop);
        let created = match things.get(&st.name) {
            // The Thing exists without its Datastream (deleted by hand): add one.
            Some(thing) => {
                ds.links.insert("Thing".into(), reference(thing));
                api.post("/Datastreams", &ds).await?
            }
            None => {
                let thing = thing(st, ds);
                let t = api.post("/Things", &thing).await?;
                let id = created_id(&t)?;
                let url = api.sta(&format!("/Things({})/Datastreams?$select=id,name", id.url_literal()));
                let list = api.get(&url).await?;
                list["value"].get(0).cloned().with_context(|| format!("{url}: the new Thing has no Datastream"))?
            }
        };
        ids.push(created_id(&created)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    if missing > 0 {
        // stderr: stdout holds only the final summary line that scripts read
        #[allow(clippy::print_stderr)]
        {
            eprintln!("已创建 {missing} 个站点（共 {} 个）", stations.len());
        }
    }
    Ok(ids)
}

/// The deep insert of a new station: Thing, its Location, its Datastream.
fn thing(st: &Station, ds: entity::Datastream) -> entity::Thing {
    let location = entity::Location {
        name: Some(format!("{} 位置", st.name)),
        description: Some(format!("{}（模拟站点，位于武汉市洪山区）", st.name)),
        encoding_type: Some("application/geo+json".into()),
        location: Some(json!({"type": "Point", "coordinates": [st.lon, st.lat]})),
        ..Default::default()
    };
    let mut properties = Map::new();
    properties.insert("kind".into(), json!(st.kind.key()));
    properties.insert("simulated".into(), json!(true));
    properties.insert("district".into(), json!("洪山区"));
    let mut links = Map::new();
    links.insert("Locations".into(), json!([location]));
    links.insert("Datastreams".into(), json!([ds]));
    entity::Thing {
        name: Some(st.name.clone()),
        description: Some(format!("{}（shikong sensors simulate 生成的模拟站点）", st.name)),
        properties: Some(properties),
        links,
        ..Default::default()
    }
}

/// Counters shared by the stations and the progress line.
#[derive(Default)]
struct Counters {
    published: AtomicU64,
    acknowledged: AtomicU64,
    refused: AtomicU64,
    connection_errors: AtomicU64,
    stop: AtomicBool,
    last_problem: std::sync::Mutex<Option<String>>,
}

impl Counters {
    fn problem(&self, text: String) {
        if let Ok(mut p) = self.last_problem.lock() {
            *p = Some(text);
        }
    }
}

async fn simulate(a: SimulateArgs, password: Option<String>) -> anyhow::Result<()> {
    let base = a.server.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let (token, username) = credentials(&a, password, &http, &base).await?;
    let api = Api { base, http, token };
    let (host, port) = broker(&a, &api).await?;
    let stations: Vec<Station> = (0..a.stations).map(Station::new).collect();
    let ids = provision(&api, &stations).await?;

    let counters = Arc::new(Counters::default());
    let (fatal_tx, mut fatal_rx) = tokio::sync::mpsc::channel::<String>(1);
    let period = Duration::from_secs_f64(station_period(a.stations, a.rate));
    let started = tokio::time::Instant::now();
    let mut clients = Vec::with_capacity(stations.len());
    let mut tasks = tokio::task::JoinSet::new();
    for (st, id) in stations.iter().zip(&ids) {
        let mut opts = MqttOptions::new(format!("shikong-sim-{}-{}", username, st.index + 1), host.clone(), port);
        opts.set_credentials(username.clone(), api.token.clone())
            .set_keep_alive(Duration::from_secs(30))
            .set_clean_session(true)
            .set_inflight(INFLIGHT);
        let (client, eventloop) = AsyncClient::new(opts, REQUEST_CAPACITY);
        tasks.spawn(drive(eventloop, counters.clone(), fatal_tx.clone()));
        // Spread the stations' first readings over one period, so the load is even.
        let phase = period.mul_f64(f64::from(st.index) / f64::from(a.stations));
        let topic = format!("v1.1/Datastreams({})/Observations", id.url_literal());
        tasks.spawn(publish(client.clone(), topic, Signal::new(st, a.seed), started + phase, period, counters.clone()));
        clients.push(client);
    }
    drop(fatal_tx);

    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {elapsed} {msg}")?);
    let deadline = a.duration.map(|d| started + Duration::from_secs_f64(d));
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let (mut last_acked, mut last_at) = (0u64, Instant::now());
    let outcome: anyhow::Result<()> = loop {
        tokio::select! {
            _ = tick.tick() => {
                let acked = counters.acknowledged.load(Ordering::Relaxed);
                let rate = (acked - last_acked) as f64 / last_at.elapsed().as_secs_f64().max(1e-3);
                (last_acked, last_at) = (acked, Instant::now());
                bar.set_message(format!(
                    "{} 个站点 · 已发布 {} · 已确认 {acked} · 拒绝 {} · {rate:.0} 条/秒",
                    a.stations,
                    counters.published.load(Ordering::Relaxed),
                    counters.refused.load(Ordering::Relaxed),
                ));
                bar.tick();
                if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                    break Ok(());
                }
            }
            _ = tokio::signal::ctrl_c() => break Ok(()),
            Some(why) = fatal_rx.recv() => break Err(anyhow::anyhow!(why)),
        }
    };
    counters.stop.store(true, Ordering::Relaxed);
    // What is in flight gets a moment to be acknowledged before the connections close.
    let settle = Instant::now();
    while outcome.is_ok()
        && settle.elapsed() < Duration::from_secs(5)
        && counters.acknowledged.load(Ordering::Relaxed) < counters.published.load(Ordering::Relaxed)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for c in &clients {
        let _ = c.try_disconnect();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    tasks.abort_all();
    bar.finish_and_clear();
    outcome?;
    let secs = started.elapsed().as_secs_f64();
    // A refused publish is acknowledged too (MQTT 3.1.1 has no reason code): not stored.
    let (published, refused) = (counters.published.load(Ordering::Relaxed), counters.refused.load(Ordering::Relaxed));
    let acked = counters.acknowledged.load(Ordering::Relaxed).saturating_sub(refused);
    // One line on stdout, stable for scripts (the benchmark reads it).
    println!(
        "simulated {} stations for {secs:.1} s: {published} readings published, {acked} stored (acknowledged), {refused} refused ({:.0} stored/s)",
        a.stations,
        acked as f64 / secs
    );
    let problem = counters.last_problem.lock().ok().and_then(|p| p.clone());
    if acked == 0 && published > 0 {
        bail!("no reading was acknowledged{}", problem.map(|p| format!(": {p}")).unwrap_or_default());
    }
    if let Some(p) = problem {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("最后一个问题: {p}");
        }
    }
    Ok(())
}

/// One station: a reading every `period` from `first` on (ticks it cannot keep up with are
/// skipped, never queued), until told to stop.
async fn publish(
    client: AsyncClient,
    topic: String,
    mut signal: Signal,
    first: tokio::time::Instant,
    period: Duration,
    counters: Arc<Counters>,
) {
    let _ = client.subscribe(REFUSALS_TOPIC, QoS::AtLeastOnce).await;
    let mut tick = tokio::time::interval_at(first, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        if counters.stop.load(Ordering::Relaxed) {
            return;
        }
        let now = Timestamp::now();
        let Some(value) = signal.next(now) else { continue };
        let obs = entity::Observation {
            phenomenon_time: Some(TimeValue::Instant(now)),
            result: Some(json!(value)),
            ..Default::default()
        };
        let Ok(payload) = serde_json::to_vec(&obs) else { continue };
        if client.publish(topic.as_str(), QoS::AtLeastOnce, false, payload).await.is_err() {
            return;
        }
        counters.published.fetch_add(1, Ordering::Relaxed);
    }
}

/// One station's MQTT connection: counts acknowledgements and refusals; a refused sign-in ends
/// the run (every station uses the same credentials), other errors reconnect after a second.
async fn drive(mut eventloop: rumqttc::EventLoop, counters: Arc<Counters>, fatal: tokio::sync::mpsc::Sender<String>) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::PubAck(_))) => {
                counters.acknowledged.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == REFUSALS_TOPIC => {
                // The PUBACK of a refused publish comes too: count it as refused, not stored.
                counters.refused.fetch_add(1, Ordering::Relaxed);
                let reason = serde_json::from_slice::<shikong_protocol::mqtt::MqttRefusal>(&p.payload)
                    .map(|r| format!("{}: {}", r.topic, r.reason))
                    .unwrap_or_else(|_| String::from_utf8_lossy(&p.payload).into_owned());
                counters.problem(reason);
            }
            Ok(_) => {}
            Err(ConnectionError::ConnectionRefused(
                code @ (ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized),
            )) => {
                let _ =
                    fatal.try_send(format!("the MQTT broker refused the sign-in ({code:?}): check the user and token"));
                return;
            }
            Err(e) => {
                // Closing the connections at the end is not a problem worth reporting.
                if counters.stop.load(Ordering::Relaxed) {
                    return;
                }
                counters.connection_errors.fetch_add(1, Ordering::Relaxed);
                counters.problem(format!("MQTT: {e}"));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_mqtt_url;

    #[test]
    fn mqtt_urls() {
        assert_eq!(parse_mqtt_url("mqtt://127.0.0.1:1883").unwrap(), ("127.0.0.1".into(), 1883));
        assert_eq!(parse_mqtt_url("mqtt://broker.local").unwrap(), ("broker.local".into(), 1883));
        assert_eq!(parse_mqtt_url("tcp://u:p@h:2000/").unwrap(), ("h".into(), 2000));
        assert_eq!(parse_mqtt_url("mqtt://[::1]:1884").unwrap(), ("::1".into(), 1884));
        assert!(parse_mqtt_url("mqtts://h:8883").is_err());
        assert!(parse_mqtt_url("mqtt://h:x").is_err());
        assert!(parse_mqtt_url("mqtt://:1883").is_err());
    }
}
