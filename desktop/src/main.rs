//! `shikong-desktop`: the office staff's desktop app (issue 16), Tauri 2 over the app core.
//!
//! `shikong-desktop --server URL --user NAME` reads the password from standard input (or from
//! the file named by `SHIKONG_DESKTOP_PASSWORD_FILE`, for launchers that give the app no standard
//! input, such as WebDriver), signs in, and opens the main window; without them the window opens
//! on the sign-in screen, or directly on the saved session. Everything the window shows comes
//! through the commands of `commands.rs` (the views render state and send intents; the requests,
//! the token and TLS stay in Rust).

// Release builds on Windows open no console window beside the app.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod analysis;
mod commands;
mod conflicts;
mod connectivity;
mod maptools;
mod print;
mod replica;
mod secrets;
mod startup;
mod stats;
mod table;

use std::io::BufRead as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use clap::Parser;
use shikong_app_core::Device;
use shikong_app_core::platform::{ImageFolder, ManualLocation, TcpProbe};

/// 时空桌面 — the shikong desktop app for office staff.
#[derive(Debug, Parser)]
#[command(name = "shikong-desktop", version)]
struct Args {
    /// The server's URL (`https://gis.example.cn`); with --user, signs in at start with the
    /// password read from standard input.
    #[arg(long, requires = "user")]
    server: Option<String>,
    /// The user to sign in as (with --server).
    #[arg(long, requires = "server")]
    user: Option<String>,
    /// The app's data folder (settings, the session when there is no secret storage); default:
    /// the platform's data folder for shikong-desktop.
    #[arg(long)]
    data: Option<PathBuf>,
    /// A PEM file of an extra CA the server's certificate is signed by (kept in the settings).
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// The view to open first: board (调度台, the default), map, table, compare, conflicts, print…
    #[arg(long, value_name = "VIEW")]
    view: Option<String>,
}

/// The platform's per-user data folder for the app.
fn default_data() -> anyhow::Result<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let base = if cfg!(windows) {
        var("APPDATA")
    } else if cfg!(target_os = "macos") {
        var("HOME").map(|h| h.join("Library/Application Support"))
    } else {
        var("XDG_DATA_HOME").or_else(|| var("HOME").map(|h| h.join(".local/share")))
    };
    Ok(base.context("no home folder: give --data DIR")?.join("shikong-desktop"))
}

/// The password for a scripted start: the file of `SHIKONG_DESKTOP_PASSWORD_FILE`, else the
/// first line of standard input (without its line end).
fn read_password() -> anyhow::Result<String> {
    let mut line = match std::env::var_os("SHIKONG_DESKTOP_PASSWORD_FILE") {
        Some(f) => std::fs::read_to_string(&f)
            .with_context(|| format!("SHIKONG_DESKTOP_PASSWORD_FILE {}", PathBuf::from(&f).display()))?,
        None => {
            let mut l = String::new();
            std::io::stdin().lock().read_line(&mut l).context("reading the password from standard input")?;
            l
        }
    };
    while line.ends_with('\n') || line.ends_with('\r') {
        line.pop();
    }
    anyhow::ensure!(!line.is_empty(), "no password given (standard input or SHIKONG_DESKTOP_PASSWORD_FILE)");
    Ok(line)
}

fn start() -> anyhow::Result<(Device, String, Option<String>)> {
    let args = Args::parse();
    let data = match args.data {
        Some(d) => d,
        None => default_data()?,
    };
    let secrets = secrets::open(&data);
    let storage = secrets.describe();
    let mut device = Device::open_with_secrets(
        &data,
        Arc::new(ManualLocation::default()),
        Arc::new(ImageFolder::new(data.join("photos"))),
        Arc::new(TcpProbe),
        secrets,
    )
    .with_context(|| format!("opening the data folder {}", data.display()))?;
    if let Some(ca) = &args.ca_cert {
        let pem = std::fs::read_to_string(ca).with_context(|| format!("--ca-cert {}", ca.display()))?;
        device.set_ca_cert(Some(&pem)).with_context(|| format!("--ca-cert {}", ca.display()))?;
    }
    if let (Some(server), Some(user)) = (&args.server, &args.user) {
        let password = read_password()?;
        device.login(server, user, &password).with_context(|| format!("signing in to {server} as {user}"))?;
    }
    Ok((device, storage, args.view))
}

fn main() {
    let started = std::time::Instant::now();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    let (device, storage, view) = match start() {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::exit(1);
        }
    };
    let shell = commands::Shell { device: Mutex::new(device), storage, map_client: Mutex::new(None) };
    if let Err(e) = commands::run(shell, startup::Startup { view, started }) {
        tracing::error!("{e:#}");
        std::process::exit(1);
    }
}
