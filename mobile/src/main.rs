//! `shikong-mobile`: the app on a desktop (development, tests) — a window, or with `--serve` the
//! same views for a browser. Android/iOS bundles are built with the Dioxus CLI (see README).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use shikong_app_core::Device;
use shikong_app_core::platform::{Camera, ImageFolder, LocationSource, ManualLocation, TcpProbe, TrackReplay};

#[derive(Debug, Parser)]
#[command(name = "shikong-mobile", about = "时空巡查: the field inspector's and the citizen's offline app")]
struct Args {
    /// The app's data folder (settings, replicas, queued reports).
    #[arg(long, default_value = "mobile-data")]
    data: PathBuf,
    /// Position source: an NMEA 0183 log or a GPX track replayed fix by fix; default: manual
    /// placement (long-press on the map) starting at LON,LAT from --start.
    #[arg(long)]
    location: Option<PathBuf>,
    /// Manual position to start from, `LON,LAT` (CGCS2000).
    #[arg(long, value_parser = parse_lonlat)]
    start: Option<(f64, f64)>,
    /// The camera: a folder of JPEG/PNG images taken in name order.
    #[arg(long, default_value = "mobile-data/camera")]
    camera: PathBuf,
    /// Serve the views to a browser at this address instead of opening a window (liveview).
    #[arg(long)]
    serve: Option<std::net::SocketAddr>,
}

fn parse_lonlat(s: &str) -> Result<(f64, f64), String> {
    let (a, b) = s.split_once(',').ok_or("expected LON,LAT")?;
    let lon: f64 = a.trim().parse().map_err(|_| format!("`{a}` is not a longitude"))?;
    let lat: f64 = b.trim().parse().map_err(|_| format!("`{b}` is not a latitude"))?;
    if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
        return Err(format!("({lon}, {lat}) is not a longitude/latitude"));
    }
    Ok((lon, lat))
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let location: Arc<dyn LocationSource> = match (&args.location, args.start) {
        (Some(p), _) => Arc::new(TrackReplay::open(p)?),
        (None, Some((lon, lat))) => Arc::new(ManualLocation::at(lon, lat)),
        (None, None) => Arc::new(ManualLocation::default()),
    };
    std::fs::create_dir_all(&args.camera).with_context(|| format!("camera folder {}", args.camera.display()))?;
    let camera: Arc<dyn Camera> = Arc::new(ImageFolder::new(&args.camera));
    let device = Device::open(&args.data, location, camera, Arc::new(TcpProbe))
        .with_context(|| format!("data folder {}", args.data.display()))?;
    match args.serve {
        Some(addr) => serve(device, addr),
        None => window(device),
    }
}

#[cfg(feature = "liveview")]
fn serve(device: Device, addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(shikong_mobile::launch::liveview(device, addr, |a, key| {
        println!("shikong-mobile listening on http://{a}/app?key={key}")
    }))
}

#[cfg(not(feature = "liveview"))]
fn serve(_: Device, _: std::net::SocketAddr) -> anyhow::Result<()> {
    anyhow::bail!("this build has no liveview (build with --features liveview)")
}

#[cfg(any(feature = "desktop", feature = "mobile"))]
fn window(device: Device) -> anyhow::Result<()> {
    shikong_mobile::launch::desktop(device)
}

#[cfg(not(any(feature = "desktop", feature = "mobile")))]
fn window(_: Device) -> anyhow::Result<()> {
    anyhow::bail!("this build has no window (build with --features desktop, or use --serve)")
}
